/**
 * The VisCoder settings: choices in JupyterLab's settings editor, and what the panel sends to
 * the kernel with each fix (read off the kernel's websocket).
 */
import { expect, galata, test } from '@jupyterlab/galata';

import { BROKEN_PLOT, recordFixRequests, SETUP, VisCoderHelper } from './helpers/VisCoderHelper';

const PLUGIN = 'viscoder-jupyter:sidebar';
const CHOSEN = { backend: 'replay', lib: 'matplotlib', samples: 2, sandbox: 'auto', retries: 3, model: '' };

test.use({ mockSettings: { ...galata.DEFAULT_SETTINGS, [PLUGIN]: CHOSEN } });

test.describe('VisCoder settings', () => {
  test('the settings editor offers choices; a fix sends the chosen settings', async ({ page, tmpPath }, testInfo) => {
    const requests = recordFixRequests(page);

    await page.evaluate(() => (window as any).jupyterapp.commands.execute('settingeditor:open', { query: 'VisCoder' }));
    const form = page.locator('.jp-SettingsPanel');
    await page.locator('.jp-PluginList-entry', { hasText: 'VisCoder' }).first().click();
    const select = (key: string) => form.locator(`select[id$="sidebar_${key}"]`);
    const options = (key: string) =>
      select(key).evaluate((node: HTMLSelectElement) =>
        [...node.options].map(option => option.text.split(':')[0].trim())
      );
    const chosen = (key: string) =>
      select(key).evaluate((node: HTMLSelectElement) => node.options[node.selectedIndex].text.split(':')[0].trim());
    await expect(select('backend')).toBeVisible();
    expect(await options('backend')).toEqual([
      "(the kernel's setting)",
      'transformers',
      'llamacpp',
      'openai',
      'replay'
    ]);
    expect(await options('lib')).toEqual(["(the kernel's setting)", 'matplotlib', 'seaborn', 'plotly']);
    expect(await options('sandbox')).toEqual(["(the kernel's setting)", 'auto', 'required', 'off']);
    expect(await chosen('backend')).toBe('replay');
    expect(await chosen('lib')).toBe('matplotlib');
    expect(await chosen('sandbox')).toBe('auto');
    await expect(form.locator('input[id$="sidebar_samples"]')).toHaveValue('2');
    const shot = testInfo.outputPath('settings-editor.png');
    await form.screenshot({ path: shot });
    await testInfo.attach('settings-editor', { path: shot, contentType: 'image/png' });

    const vc = new VisCoderHelper(page, tmpPath, testInfo);
    await vc.openNotebook('settings.ipynb', [SETUP, BROKEN_PLOT]);
    await vc.runCell(0);
    await vc.runCell(1);
    await (await vc.outputButton(1)).click();
    await vc.fixAndWaitForProposal();
    expect(requests).toHaveLength(1);
    const settings = JSON.parse(/"settings":(\{[^{}]*\})/.exec(requests[0])![1]);
    // Empty values (model) are left to the kernel's own config: not sent.
    expect(settings).toEqual({ backend: 'replay', lib: 'matplotlib', samples: 2, sandbox: 'auto', retries: 3 });
    await vc.clickProposalButton('Discard');
  });
});
