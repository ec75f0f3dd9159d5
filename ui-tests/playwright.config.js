/**
 * Galata/Playwright configuration: Debian's chromium, headless, against the jupyter lab
 * that run-ui-tests.sh starts (it passes the URL's port and the token in the environment).
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const port = process.env.VISCODER_LAB_PORT;
const token = process.env.VISCODER_LAB_TOKEN;
if (!port || !token) {
  throw new Error('Run the browser tests with ui-tests/run-ui-tests.sh: it starts jupyter lab for them.');
}

module.exports = {
  ...baseConfig,
  testDir: './tests',
  outputDir: './test-results/artifacts',
  // Two shared cores: generous limits, and one test at a time.
  timeout: 300_000,
  expect: { timeout: 90_000 },
  workers: 1,
  fullyParallel: false,
  // One retry absorbs a rare browser-side hiccup (seen once: a trace file vanished at teardown).
  retries: process.env.CI ? 1 : 0,
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]],
  use: {
    ...baseConfig.use,
    baseURL: `http://127.0.0.1:${port}`,
    extraHTTPHeaders: { Authorization: `token ${token}` },
    browserName: 'chromium',
    headless: true,
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run'
      ]
    },
    viewport: { width: 1400, height: 900 },
    actionTimeout: 60_000,
    navigationTimeout: 120_000,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    video: 'off'
  }
};
