import { IJupyterLabPageFixture } from '@jupyterlab/galata';
import { expect, Locator, Page, TestInfo } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

/** Where screenshots of each step go (also attached to the test report). */
export const SCREENSHOTS = path.join(__dirname, '..', '..', 'test-results', 'screenshots');
/**
 * The repository's documentation screenshots: written only with VISCODER_DOCS_SCREENSHOTS=1
 * (they change on every run, e.g. the seconds a fix took), so a plain test run leaves git clean.
 */
export const DOCS_SCREENSHOTS = path.join(__dirname, '..', '..', '..', 'docs', 'screenshots');
const WRITE_DOCS = process.env.VISCODER_DOCS_SCREENSHOTS === '1';

/** The label of the buttons under error and image outputs: they open the sidebar on the cell. */
export const OUTPUT_BUTTON = 'Fix in VisCoder…';

/** The sidebar's width when a button opens it (labextension/src/sidebar/width.ts). */
export const DEFAULT_WIDTH = 420;

export const SETUP = [
  'import pandas as pd',
  'import matplotlib',
  "sales = pd.DataFrame({'region': ['North', 'South', 'West', 'North'], 'revenue': [10.0, 7.5, 3.0, 4.0]})"
].join('\n');

/** Plotting code that works: an image output. */
export const WORKING_PLOT = ['import matplotlib.pyplot as plt', 'plt.plot([1, 3, 2])', 'plt.show()'].join('\n');

/** Plotting code that raises a KeyError: the column is 'region', not 'Region'. */
export const BROKEN_PLOT = [
  'import matplotlib.pyplot as plt',
  "plt.bar(sales['Region'], sales['revenue'])",
  'plt.show()'
].join('\n');

/** Every fix request the page sends to a kernel, as sent (comm messages travel on the
 * kernel's channels websocket); call before the page opens the notebook. */
export function recordFixRequests(page: Page): string[] {
  const requests: string[] = [];
  page.on('websocket', socket =>
    socket.on('framesent', frame => {
      const text = typeof frame.payload === 'string' ? frame.payload : frame.payload.toString('utf8');
      if (text.includes('"type":"fix"')) {
        requests.push(text);
      }
    })
  );
  return requests;
}

export interface INotebookCell {
  source: string;
}

/**
 * The VisCoder sidebar and the notebooks around it, as a user drives them.
 */
export class VisCoderHelper {
  constructor(
    readonly page: IJupyterLabPageFixture,
    readonly tmpPath: string,
    readonly testInfo: TestInfo
  ) {}

  /** The sidebar panel. */
  get sidebar(): Locator {
    return this.page.locator('#viscoder-sidebar');
  }

  get fixButton(): Locator {
    return this.sidebar.getByRole('button', { name: 'Fix this plot' });
  }

  get note(): Locator {
    return this.sidebar.locator('.jp-VisCoder-note');
  }

  get proposal(): Locator {
    return this.sidebar.locator('.jp-VisCoder-proposal');
  }

  /** Accept / Insert below / Discard. */
  get decision(): Locator {
    return this.sidebar.locator('.jp-VisCoder-decision');
  }

  get problem(): Locator {
    return this.sidebar.locator('.jp-VisCoder-problem');
  }

  get notice(): Locator {
    return this.sidebar.locator('.jp-VisCoder-notice');
  }

  /** Write a notebook with these code cells (no outputs) and open it. */
  async openNotebook(name: string, cells: string[]): Promise<void> {
    const notebook = {
      cells: cells.map((source, index) => ({
        id: `cell-${index}`, // the same ids in every notebook: the sidebar must tell notebooks apart
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
    const file = `${this.tmpPath}/${name}`;
    await this.page.contents.uploadContent(JSON.stringify(notebook), 'text', file);
    expect(await this.page.notebook.openByPath(file)).toBe(true);
    await this.page.notebook.activate(name);
    await this.waitForKernelIdle();
  }

  /** Wait until the active notebook's kernel is started and idle. */
  async waitForKernelIdle(): Promise<void> {
    await this.page.waitForFunction(
      () => (window as any).jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle',
      undefined,
      { timeout: 120_000 }
    );
  }

  /** Run one cell in place (no new cell is added below the last one). */
  async runCell(index: number): Promise<void> {
    await this.page.notebook.runCell(index, { inplace: true });
  }

  /** The button under a cell's error or plot that opens the sidebar on it. */
  async outputButton(index: number): Promise<Locator> {
    return (await this.output(index)).getByRole('button', { name: OUTPUT_BUTTON, exact: true });
  }

  /** The input (code) of a cell in the active notebook. */
  async input(index: number): Promise<Locator> {
    return (await this.page.notebook.getCellLocator(index))!.locator('.jp-Cell-inputArea');
  }

  /** The output area of a cell in the active notebook. */
  async output(index: number): Promise<Locator> {
    const cell = await this.page.notebook.getCellLocator(index);
    return cell!.locator('.jp-Cell-outputArea');
  }

  /** The notebook's cells as the model holds them: what would be saved. */
  async snapshot(name: string): Promise<unknown> {
    return this.page.evaluate(notebookName => {
      const app = (window as any).jupyterapp;
      const widgets = [...app.shell.widgets('main')];
      const panel = widgets.find((w: any) => w.context?.path?.endsWith(notebookName));
      const json = panel.content.model.toJSON();
      return json.cells.map((cell: any) => ({ source: cell.source, outputs: cell.outputs, type: cell.cell_type }));
    }, name);
  }

  async cellSource(index: number): Promise<string> {
    return this.page.notebook.getCellTextInput(index);
  }

  /**
   * Save a screenshot of the sidebar (small PNG) and attach it to the report; with `docs`, also
   * as docs/screenshots/<docs>.png when VISCODER_DOCS_SCREENSHOTS=1.
   */
  async shot(name: string, target: 'sidebar' | 'page' = 'sidebar', docs?: string): Promise<void> {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    const file = path.join(SCREENSHOTS, `${name}.png`);
    if (target === 'sidebar') {
      await this.sidebar.screenshot({ path: file });
    } else {
      await this.page.screenshot({ path: file });
    }
    await this.testInfo.attach(name, { path: file, contentType: 'image/png' });
    if (docs && WRITE_DOCS) {
      fs.mkdirSync(DOCS_SCREENSHOTS, { recursive: true });
      fs.copyFileSync(file, path.join(DOCS_SCREENSHOTS, `${docs}.png`));
    }
  }

  /** Click "Fix" and wait for the proposal; returns the milliseconds from click to proposal. */
  async fixAndWaitForProposal(): Promise<number> {
    await expect(this.fixButton).toBeEnabled();
    const started = Date.now();
    await this.fixButton.click();
    await expect(this.proposal).toBeVisible();
    const elapsed = Date.now() - started;
    console.log(`VisCoder: click to proposed fix: ${elapsed} ms (${this.testInfo.title})`);
    return elapsed;
  }

  async clickProposalButton(name: 'Accept' | 'Insert below' | 'Discard'): Promise<void> {
    await this.decision.getByRole('button', { name, exact: true }).click();
    await expect(this.proposal).toBeHidden();
  }
}
