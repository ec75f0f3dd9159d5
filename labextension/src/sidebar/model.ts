import { ICodeCellModel } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';
import { UUID } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { IDone, IDownload, IFixSettings, IReviewFinding, KernelMessage, Verdict } from '../protocol';
import { IKernelBridge, IKernelBridges } from '../tokens';
import { findCell, ICellError, lastError } from './cellInfo';

/** idle: nothing running, nothing proposed; running: a fix is in flight; proposed: waiting for the user. */
export type Phase = 'idle' | 'running' | 'proposed';

export interface ILogLine {
  kind: 'status' | 'notice' | 'attempt' | 'failed' | 'done';
  text: string;
  detail?: string;
}

export interface IProposal {
  code: string;
  figures: string[];
  attempts: number;
  seconds: number;
  /** From the click on Fix to the proposal, as the user waited for it. */
  elapsedMs: number;
  /** What the kernel checked of the figure ('' when it says nothing). */
  verified: string;
  /** Lines the review of generated code flagged: Accept and Insert wait for `reviewRead`. */
  findings: IReviewFinding[];
}

/**
 * The sidebar's state: which cell it shows, the run in flight, the proposal.
 *
 * It follows the active cell, except while a fix runs or a proposal waits for the
 * user: then it stays on its cell. Nothing is written to the notebook before
 * `accept` or `insertBelow`.
 */
export class SidebarModel implements IDisposable {
  constructor(
    private readonly _bridges: IKernelBridges,
    private readonly _settings: () => IFixSettings
  ) {}

  get changed(): ISignal<SidebarModel, void> {
    return this._changed;
  }
  get isDisposed(): boolean {
    return this._isDisposed;
  }
  get panel(): NotebookPanel | null {
    return this._panel;
  }
  get cellId(): string | null {
    return this._cellId;
  }
  get phase(): Phase {
    return this._phase;
  }
  get note(): string {
    return this._note;
  }
  set note(value: string) {
    this._note = value;
    this._changed.emit();
  }
  get log(): readonly ILogLine[] {
    return this._log;
  }
  get stream(): string {
    return this._stream;
  }
  /** The model download in progress before the first attempt, if any. */
  get download(): IDownload | null {
    return this._download;
  }
  get proposal(): IProposal | null {
    return this._proposal;
  }
  /** Something that stopped or refused a fix, said plainly. */
  get problem(): string | null {
    return this._problem;
  }
  /** What just happened (accepted, inserted, discarded). */
  get notice(): string | null {
    return this._notice;
  }
  /** The user ticked "I read it" under the proposal's flagged lines. */
  get reviewRead(): boolean {
    return this._reviewRead;
  }
  set reviewRead(value: boolean) {
    this._reviewRead = value;
    this._changed.emit();
  }
  /**
   * The proposal may go into the notebook: nothing was flagged in it, or the user said they
   * read the flagged code (the code would run in their own kernel, outside the sandbox).
   */
  get mayUse(): boolean {
    return this._proposal !== null && (this._proposal.findings.length === 0 || this._reviewRead);
  }
  /** The cell's model, while it is still in its notebook. */
  get cell(): ICodeCellModel | null {
    return this._panel && this._cellId ? (findCell(this._panel, this._cellId)?.model ?? null) : null;
  }
  get cellIndex(): number {
    return this._panel && this._cellId ? (findCell(this._panel, this._cellId)?.index ?? -1) : -1;
  }
  get source(): string {
    return this.cell?.sharedModel.getSource() ?? '';
  }
  /**
   * The cell's last error, unless it belongs to code the cell no longer holds: after Accept
   * the traceback of the replaced code stays in the outputs until the cell runs again.
   */
  get error(): ICellError | null {
    const cell = this.cell;
    if (!cell) {
      return null;
    }
    const replaced = this._replaced.get(cell);
    if (replaced !== undefined && cell.sharedModel.getSource() !== replaced) {
      return null;
    }
    return lastError(cell);
  }

  /** The active cell changed (null: not a code cell of a notebook). */
  follow(panel: NotebookPanel | null, cellId: string | null): void {
    if (this._phase !== 'idle') {
      this._pending = { panel, cellId };
      return;
    }
    this._setTarget(panel, cellId);
  }

  /**
   * Show this cell now, even over a pending proposal (the buttons under outputs): a fresh
   * start on it, without what the panel said about an earlier fix.
   */
  show(panel: NotebookPanel, cellId: string): void {
    const other = panel !== this._panel || cellId !== this._cellId;
    if (this._phase === 'running') {
      if (other) {
        this._pending = { panel, cellId };
      }
      return;
    }
    let notice: string | null = null;
    if (this._phase === 'proposed') {
      if (!other) {
        return; // the proposal for this very cell waits for the user
      }
      notice = 'The proposal for the other cell was discarded; nothing was changed.';
      this._endProposal(notice);
    }
    if (other) {
      this._setTarget(panel, cellId, notice);
    } else {
      this._reset(notice, true);
      this._changed.emit();
    }
  }

  async fix(): Promise<void> {
    const panel = this._panel;
    const cell = this.cell;
    if (!panel || !cell || this._phase === 'running') {
      return;
    }
    this._problem = this._notice = null;
    this._proposal = null;
    this._phase = 'running';
    this._pending = null;
    this._log = [{ kind: 'status', text: 'Sending the cell to the kernel…' }];
    this._stream = '';
    this._figures = new Map();
    this._failedCode = new Map();
    this._runId = UUID.uuid4();
    this._clickedAt = performance.now();
    this._changed.emit();

    const bridge = this._bridges.get(panel);
    this._listen(bridge);
    const error = this.error;
    try {
      const problem = await bridge.problem();
      if (problem) {
        this._log = [];
        this._stop(problem);
        // No kernel, busy, starting: true only until the kernel's status changes (_onKernelStatus).
        this._problemIsKernelState = true;
        return;
      }
      await bridge.send({
        type: 'fix',
        id: this._runId,
        source: cell.sharedModel.getSource(),
        traceback: error ? error.traceback || `${error.ename}: ${error.evalue}` : '',
        note: this._note.trim(),
        settings: this._settings()
      });
    } catch (reason) {
      this._log = []; // refused before it started: nothing to report but the reason
      this._stop(reason instanceof Error ? reason.message : String(reason));
    }
  }

  async cancel(): Promise<void> {
    if (this._phase !== 'running' || !this._panel) {
      return;
    }
    this._log = [...this._log, { kind: 'status', text: 'Cancelling: stopping the model and the child kernel…' }];
    this._changed.emit();
    try {
      await this._bridges.get(this._panel).send({ type: 'cancel', id: this._runId });
    } catch (reason) {
      this._stop(reason instanceof Error ? reason.message : String(reason));
    }
  }

  /** Replace the cell's source with the proposal: one undo step in the cell restores it. */
  accept(): void {
    const proposal = this._proposal;
    const cell = this.cell;
    if (this._phase !== 'proposed' || !proposal || !this.mayUse) {
      return;
    }
    if (!cell) {
      this._endProposal('The cell is gone; nothing was changed.');
      return;
    }
    // Its own undo step: not merged with the user's last keystrokes, nor with later ones.
    const shared = cell.sharedModel;
    const before = shared.getSource();
    stopCapturing(shared);
    shared.setSource(proposal.code);
    stopCapturing(shared);
    this._markReplaced(cell, before);
    this._accepted = { cell, code: proposal.code };
    this._sendVerdict('accept');
    // The panel stays on the accepted cell (not on a cell the user clicked while deciding);
    // the note asked for this fix and is done with.
    this._pending = null;
    this._note = '';
    this._endProposal(ACCEPTED, false);
    const panel = this._panel;
    const index = this.cellIndex;
    if (panel && index >= 0) {
      void revealCell(panel, index);
    }
  }

  /** Add the proposal as a new cell below, leaving the cell as it was. */
  insertBelow(): void {
    const proposal = this._proposal;
    const panel = this._panel;
    const index = this.cellIndex;
    if (this._phase !== 'proposed' || !proposal || !panel?.content.model || !this.mayUse) {
      return;
    }
    if (index < 0) {
      this._endProposal('The cell is gone; nothing was changed.');
      return;
    }
    panel.content.model.sharedModel.insertCell(index + 1, {
      cell_type: 'code',
      source: proposal.code,
      metadata: { viscoder: { fixed_from: this._cellId } }
    });
    panel.content.activeCellIndex = index + 1;
    this._sendVerdict('insert');
    this._endProposal('Inserted the fix as a new cell below.', false);
  }

  discard(): void {
    if (this._phase === 'proposed') {
      this._sendVerdict('discard');
      this._endProposal('Discarded: the notebook was not changed.');
    }
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._listen(null);
    this._watch(null);
    Signal.clearData(this);
  }

  /**
   * Move to another cell with a clean slate: no note, log, problem or notice of the cell
   * before, except `notice`, which says what just happened to the cell before.
   */
  private _setTarget(panel: NotebookPanel | null, cellId: string | null, notice: string | null = null): void {
    if (panel === this._panel && cellId === this._cellId) {
      return;
    }
    this._panel = panel;
    this._cellId = cellId;
    this._pending = null;
    this._reset(notice, false);
    this._watch(this.cell);
    this._changed.emit();
  }

  /** Forget what the panel showed about the last run (idle only). */
  private _reset(notice: string | null, keepNote: boolean): void {
    if (!keepNote) {
      this._note = '';
    }
    this._log = [];
    this._stream = '';
    this._figures = new Map();
    this._failedCode = new Map();
    this._problem = null;
    this._problemIsKernelState = false;
    this._notice = notice;
  }

  private _endProposal(notice: string, keepLog = true): void {
    this._proposal = null;
    this._reviewRead = false;
    this._phase = 'idle';
    this._notice = notice;
    if (!keepLog) {
      this._stream = '';
    }
    this._changed.emit();
    this._applyPending(notice);
  }

  /**
   * Tell the kernel which button the user pressed on the proposal: its dialogue log (when
   * VisCoder.collect is on) records it; otherwise the kernel ignores it. Best effort, no reply.
   */
  private _sendVerdict(verdict: Verdict): void {
    if (!this._panel || !this._runId) {
      return;
    }
    this._bridges
      .get(this._panel)
      .send({ type: 'verdict', id: this._runId, verdict })
      .catch(() => undefined);
  }

  private _stop(problem: string | null): void {
    this._download = null;
    this._phase = 'idle';
    this._problem = problem;
    this._problemIsKernelState = false;
    if (problem) {
      // The problem takes the place of what was in progress ("Sending the cell to the kernel…"):
      // a step that ended in this problem must not read as still going on.
      let end = this._log.length;
      while (end > 0 && this._log[end - 1].kind === 'status' && this._log[end - 1].text.endsWith('…')) {
        end--;
      }
      this._log = this._log.slice(0, end);
    }
    this._changed.emit();
    // Moving on to the cell the user went to meanwhile: say how the fix of this one ended there.
    const index = this.cellIndex;
    this._applyPending(problem && index >= 0 ? `Cell #${index + 1}: ${problem}` : problem);
  }

  /** Move on to the cell the user went to meanwhile, saying what happened to this one. */
  private _applyPending(notice: string | null): void {
    const pending = this._pending;
    if (pending && this._phase === 'idle') {
      this._setTarget(pending.panel, pending.cellId, notice);
    }
  }

  /**
   * After Accept the cell's error output belongs to the code it replaced: the panel hides it
   * (and sends no stale traceback) until the cell's outputs change or its source is restored.
   */
  private _markReplaced(cell: ICodeCellModel, before: string): void {
    if (this._replaced.has(cell)) {
      this._replaced.set(cell, before);
      return;
    }
    this._replaced.set(cell, before);
    const forget = () => {
      this._replaced.delete(cell);
      cell.outputs.changed.disconnect(forget);
    };
    cell.outputs.changed.connect(forget);
  }

  /** Keep the view current while the user edits or re-runs the cell. */
  private _watch(cell: ICodeCellModel | null): void {
    if (this._watched && !this._watched.isDisposed) {
      this._watched.contentChanged.disconnect(this._onContent, this);
      this._watched.outputs.changed.disconnect(this._onOutputs, this);
      this._watched.stateChanged.disconnect(this._emit, this);
    }
    this._watched = cell;
    if (cell) {
      cell.contentChanged.connect(this._onContent, this);
      cell.outputs.changed.connect(this._onOutputs, this);
      cell.stateChanged.connect(this._emit, this);
    }
  }

  /**
   * The cell was edited. "Accepted: the cell now holds the fix" is true only while it does: an undo
   * (Ctrl+Z) or an edit makes it old news.
   */
  private _onContent(): void {
    const accepted = this._accepted;
    if (accepted && this._notice === ACCEPTED && accepted.cell.sharedModel.getSource() !== accepted.code) {
      this._notice = null;
      this._accepted = null;
    }
    this._changed.emit();
  }

  /** The cell ran again: what the panel said about the last fix (its log, Accepted...) is old news. */
  private _onOutputs(): void {
    if (this._phase === 'idle') {
      this._reset(null, true);
    }
    this._changed.emit();
  }

  private _listen(bridge: IKernelBridge | null): void {
    if (this._bridge === bridge) {
      return;
    }
    if (this._bridge) {
      this._bridge.received.disconnect(this._onMessage, this);
      this._bridge.lost.disconnect(this._onLost, this);
      this._bridge.kernelStatus.disconnect(this._onKernelStatus, this);
    }
    this._bridge = bridge;
    if (bridge) {
      bridge.received.connect(this._onMessage, this);
      bridge.lost.connect(this._onLost, this);
      bridge.kernelStatus.connect(this._onKernelStatus, this);
    }
  }

  /**
   * "The kernel is busy" (or starting, or missing) is about the kernel's state when Fix was
   * pressed: once that state changes, ask again, and say nothing when the kernel is ready now.
   */
  private async _onKernelStatus(bridge: IKernelBridge): Promise<void> {
    if (!this._problemIsKernelState || this._phase !== 'idle') {
      return;
    }
    const shown = this._problem;
    const now = await bridge.problem();
    if (this._problemIsKernelState && this._problem === shown && now !== shown) {
      this._problem = now;
      this._problemIsKernelState = now !== null;
      this._changed.emit();
    }
  }

  private _onLost(_: IKernelBridge, reason: string): void {
    if (this._phase === 'running') {
      this._stop(reason);
    }
  }

  private _onMessage(_: IKernelBridge, message: KernelMessage): void {
    if (message.type === 'ready' || message.id !== this._runId || this._phase !== 'running') {
      return;
    }
    if (message.type !== 'download') {
      this._download = null; // the download is over once anything else happens
    }
    switch (message.type) {
      case 'download':
        this._download = message;
        this._changed.emit();
        break;
      case 'status':
        this._add({ kind: 'status', text: capitalize(message.message) + '…' });
        break;
      case 'notice':
        this._add({ kind: 'notice', text: message.message });
        break;
      case 'attempt':
        this._stream = '';
        this._add({ kind: 'attempt', text: `Attempt ${message.number} of ${message.of}: writing code…` });
        break;
      case 'text':
        this._stream += message.text;
        this._changed.emit();
        break;
      case 'attempt_failed':
        this._failedCode.set(message.number, message.code);
        this._add({
          kind: 'failed',
          text: `Attempt ${message.number} failed: ${message.evalue}`,
          detail: message.error
        });
        break;
      case 'figure':
        this._figures.set(message.number, [...(this._figures.get(message.number) ?? []), message.png]);
        break;
      case 'done':
        this._onDone(message);
        break;
      case 'cancelled':
        this._add({ kind: 'done', text: 'Cancelled.' });
        this._stop('Cancelled: the model and the child kernel were stopped; nothing was changed.');
        break;
      case 'error':
        this._stop(message.message);
        break;
    }
  }

  private _onDone({ ok, code, attempts, seconds, error, verified, findings }: IDone): void {
    const plural = attempts === 1 ? '' : 's';
    const checked = (verified ?? '').trim().replace(/\.$/, '');
    if (!ok) {
      this._add({ kind: 'done', text: `No working plot after ${attempts} attempt${plural}.` });
      // (No attempt drew: `verified` would only say "did not draw a figure".)
      this._stop(`No working plot after ${attempts} attempt${plural}. Last error: ${error}`);
      return;
    }
    const elapsedMs = performance.now() - this._clickedAt;
    const figures = this._finalFigures(code);
    const flagged = findings ?? [];
    this._proposal = { code, figures, attempts, seconds, elapsedMs, verified: checked, findings: flagged };
    this._reviewRead = false;
    this._phase = 'proposed';
    const when = `after ${attempts} attempt${plural} (${(elapsedMs / 1000).toFixed(1)} s from the click)`;
    // Say what the kernel checked of the figure, not just that something ran.
    this._add({
      kind: 'done',
      text: checked ? `Checked ${when}: ${checked}.` : `Ran without error ${when}; nothing is known of the figure.`
    });
    if (flagged.length) {
      const lines = flagged.length === 1 ? '1 line' : `${flagged.length} lines`;
      this._add({
        kind: 'failed',
        text: `The review flagged ${lines} that plotting code never needs: read the code before you use it.`
      });
    }
  }

  /**
   * The figures of the attempt the kernel proposes, not of every attempt that drew: the kernel
   * sends each attempt's figures, and an earlier attempt's (say, vertical bars where the note asked
   * for horizontal ones) must not pass for the fix's. The kernel's choice (PlotResult.final): the
   * last attempt that passed, else the last that drew; `code` tells a failed one apart.
   */
  private _finalFigures(code: string): string[] {
    const drew = [...this._figures.keys()].sort((a, b) => a - b);
    const passed = drew.filter(n => !this._failedCode.has(n));
    const same = drew.filter(n => this._failedCode.get(n) === code);
    const chosen = passed.pop() ?? same.pop() ?? drew.pop();
    return chosen === undefined ? [] : this._figures.get(chosen)!;
  }

  private _add(line: ILogLine): void {
    this._log = [...this._log, line];
    this._changed.emit();
  }

  private _emit(): void {
    this._changed.emit();
  }

  private _isDisposed = false;
  private _changed = new Signal<SidebarModel, void>(this);
  private _panel: NotebookPanel | null = null;
  private _cellId: string | null = null;
  private _pending: { panel: NotebookPanel | null; cellId: string | null } | null = null;
  private _watched: ICodeCellModel | null = null;
  private _bridge: IKernelBridge | null = null;
  private _phase: Phase = 'idle';
  private _note = '';
  private _log: ILogLine[] = [];
  private _stream = '';
  private _download: IDownload | null = null;
  /** The figures of each attempt that drew, by attempt number. */
  private _figures = new Map<number, string[]>();
  /** The code of each failed attempt, by attempt number. */
  private _failedCode = new Map<number, string>();
  private _proposal: IProposal | null = null;
  private _reviewRead = false;
  private _problem: string | null = null;
  /** `problem` says what the kernel's state was (busy, starting, none), not how a run ended. */
  private _problemIsKernelState = false;
  private _notice: string | null = null;
  /** The cell Accept wrote to and the code it wrote: the ACCEPTED notice holds while the cell does. */
  private _accepted: { cell: ICodeCellModel; code: string } | null = null;
  private _runId = '';
  private _clickedAt = 0;
  /** Cells whose source was replaced by Accept, with the source their error output belongs to. */
  private _replaced = new WeakMap<ICodeCellModel, string>();
}

const ACCEPTED = 'Accepted: the cell now holds the fix (undo in the cell restores your code). Run it to see the plot.';

/**
 * Bring a cell's code into the notebook's view and make it the active cell: after Accept the
 * notebook is still scrolled to the old traceback, below the new code.
 */
async function revealCell(panel: NotebookPanel, index: number): Promise<void> {
  const notebook = panel.content;
  if (notebook.activeCellIndex !== index) {
    notebook.activeCellIndex = index;
  }
  await new Promise(resolve => requestAnimationFrame(resolve)); // after any relayout (a figure tab closing)
  const cell = notebook.widgets[index];
  if (!cell || notebook.isHidden) {
    return;
  }
  const view = notebook.node.getBoundingClientRect();
  const input = cell.inputArea?.node.getBoundingClientRect();
  if (input && input.top >= view.top && input.bottom <= view.bottom) {
    return; // already in view: no jump
  }
  try {
    await notebook.scrollToItem(index, 'start');
  } catch {
    cell.node.scrollIntoView({ block: 'start' });
  }
}

/** The Yjs undo manager of a shared cell (YCodeCell has one; the interface does not say so). */
function stopCapturing(shared: object): void {
  (shared as { undoManager?: { stopCapturing(): void } | null }).undoManager?.stopCapturing();
}

function capitalize(text: string): string {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}
