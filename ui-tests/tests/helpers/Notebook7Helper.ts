import { expect, Locator, Page, TestInfo } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

import { DOCS_SCREENSHOTS, OUTPUT_BUTTON, SCREENSHOTS } from './VisCoderHelper';

const WRITE_DOCS = process.env.VISCODER_DOCS_SCREENSHOTS === '1';

/**
 * One notebook in Notebook 7 (the `notebook` package's /notebooks/ page, served by the same
 * server as JupyterLab), driven with plain Playwright: Galata's fixtures know JupyterLab's page
 * only. The app is `window.jupyterapp` (jupyter_server_test_config.py exposes it).
 */
export class Notebook7Helper {
  constructor(
    readonly page: Page,
    readonly testInfo: TestInfo
  ) {}

  /** The VisCoder panel (in Notebook 7's right side panel). */
  get sidebar(): Locator {
    return this.page.locator('#viscoder-sidebar');
  }

  get proposal(): Locator {
    return this.sidebar.locator('.jp-VisCoder-proposal');
  }

  /** Write a notebook with these code cells (no outputs) and open it at /notebooks/<name>. */
  async open(name: string, cells: string[]): Promise<void> {
    const content = {
      cells: cells.map((source, index) => ({
        id: `cell-${index}`,
        cell_type: 'code',
        execution_count: null,
        metadata: {},
        outputs: [],
        source
      })),
      metadata: {
        kernelspec: { display_name: 'Python 3 (ipykernel)', language: 'python', name: 'python3' },
        language_info: { name: 'python' }
      },
      nbformat: 4,
      nbformat_minor: 5
    };
    const saved = await this.page.request.put(`/api/contents/${name}`, {
      data: { type: 'notebook', format: 'json', content }
    });
    expect(saved.ok()).toBe(true);
    const response = await this.page.goto(`/notebooks/${name}`);
    // 404 here: the `notebook` package (Notebook 7) is not installed next to jupyterlab.
    expect(response?.status()).toBe(200);
    await expect(this.page.locator('.jp-NotebookPanel .jp-Cell')).toHaveCount(cells.length);
    await this.waitForKernelIdle();
  }

  async waitForKernelIdle(): Promise<void> {
    await this.page.waitForFunction(
      () => (window as any).jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle',
      undefined,
      { timeout: 120_000 }
    );
  }

  /** Run one cell in place (Notebook 7's "Run this cell" command) and wait until it finished. */
  async runCell(index: number): Promise<void> {
    await this.page.evaluate(async cellIndex => {
      const app = (window as any).jupyterapp;
      const notebook = app.shell.currentWidget.content;
      notebook.activeCellIndex = cellIndex;
      notebook.mode = 'command';
      await app.commands.execute('notebook:run-cell');
    }, index);
    await this.waitForKernelIdle();
  }

  cell(index: number): Locator {
    return this.page.locator('.jp-NotebookPanel .jp-Notebook .jp-Cell').nth(index);
  }

  output(index: number): Locator {
    return this.cell(index).locator('.jp-Cell-outputArea');
  }

  /** The button under a cell's error or plot that opens the VisCoder panel on it. */
  outputButton(index: number): Locator {
    return this.output(index).getByRole('button', { name: OUTPUT_BUTTON, exact: true });
  }

  /** The notebook's cells as its model holds them: what would be saved. */
  async sources(): Promise<string[]> {
    return this.page.evaluate(() => {
      const model = (window as any).jupyterapp.shell.currentWidget.content.model;
      return model.toJSON().cells.map((cell: any) => (Array.isArray(cell.source) ? cell.source.join('') : cell.source));
    });
  }

  /** The ids of the widgets in one of the shell's areas whose panel is showing. */
  async shownIn(area: 'left' | 'right' | 'main'): Promise<string[]> {
    return this.page.evaluate(
      where =>
        [...(window as any).jupyterapp.shell.widgets(where)].filter((w: any) => w.isVisible).map((w: any) => w.id),
      area
    );
  }

  /** A screenshot of the page, attached to the report; with `docs`, also docs/screenshots/<docs>.png
   * when VISCODER_DOCS_SCREENSHOTS=1. */
  async shot(name: string, docs?: string): Promise<void> {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    const file = path.join(SCREENSHOTS, `${name}.png`);
    await this.page.screenshot({ path: file });
    await this.testInfo.attach(name, { path: file, contentType: 'image/png' });
    if (docs && WRITE_DOCS) {
      fs.mkdirSync(DOCS_SCREENSHOTS, { recursive: true });
      fs.copyFileSync(file, path.join(DOCS_SCREENSHOTS, `${docs}.png`));
    }
  }
}
