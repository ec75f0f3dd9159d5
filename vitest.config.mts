import { defineConfig } from 'vitest/config';

/**
 * Unit tests of the extension (labextension/src/__tests__), in node: no browser, no server.
 * jsdom, because the JupyterLab packages the sidebar model's tests build on touch the DOM when
 * they are imported; setup.ts adds the few globals jsdom lacks.
 */
export default defineConfig({
  test: {
    include: ['labextension/src/**/__tests__/**/*.test.ts'],
    environment: 'jsdom',
    setupFiles: ['labextension/src/__tests__/setup.ts'],
    // Its ESM imports omit file extensions, which node's loader refuses; vite resolves them.
    server: { deps: { inline: [/@jupyter\/web-components/] } },
    onConsoleLog(log) {
      // Yjs warns about every cell built before it joins the notebook's document (JupyterLab's
      // console shows the same); @jupyterlab/apputils says jsdom has no clipboard. Neither is ours.
      return !/Invalid access: Add Yjs type|\[yjs#509\]|Clipboard API not available/.test(log);
    }
  }
});
