/**
 * The sidebar's comm protocol, declared in viscoder_jupyter/frontends/protocol.py (tests/test_protocol.py checks both sides).
 *
 * Every message is a JSON object told apart by `type`.
 */

/** The comm target the IPython extension registers in the kernel. */
export const COMM_TARGET = 'viscoder';

/**
 * Settings the panel passes with each fix (labextension/schema/sidebar.json); a key that is
 * left out means "the kernel's own config". The kernel keeps only the keys in comm.SETTING_KEYS,
 * and only values that tighten its own: sandbox stricter, its own or allowed model and backend,
 * collect off (viscoder_jupyter/frontends/sidebar_settings.py); a refused one comes back as a notice.
 */
export interface IFixSettings {
  /** transformers, llamacpp, openai, replay (or a backend a package registers). */
  backend?: string;
  model?: string;
  /** The plotting library the code must use: matplotlib, seaborn, plotly. */
  lib?: string;
  retries?: number;
  /** Candidates sampled when a retry fails the same way again (0: greedy only). */
  samples?: number;
  timeout?: number;
  /** Seconds the model may spend on one attempt's reply (0: no limit). */
  attempt_budget?: number;
  /** The child kernel under bubblewrap: auto, required, off. */
  sandbox?: string;
  /** Log the fix's conversation and the user's verdict locally, for fine-tuning (VisCoder.collect). */
  collect?: boolean;
}

export interface IFixRequest {
  type: 'fix';
  id: string;
  source: string;
  traceback: string;
  note: string;
  settings: IFixSettings;
}

export interface ICancelRequest {
  type: 'cancel';
  id: string;
}

/** The proposal's button the user pressed: Accept, Insert below, Discard. */
export type Verdict = 'accept' | 'insert' | 'discard';

/** What the user did with a run's proposal: logged when the kernel logs dialogues; no reply. */
export interface IVerdict {
  type: 'verdict';
  id: string;
  verdict: Verdict;
}

/** Frontend to kernel. */
export type FrontendMessage = IFixRequest | ICancelRequest | IVerdict;

export interface IReady {
  type: 'ready';
  version: string;
}

export interface IStatus {
  type: 'status';
  id: string;
  message: string;
}

/**
 * What the user must know of the run, kept as a line in the panel's log: e.g. a setting of the
 * sidebar the kernel refused (settings may only tighten the kernel's own configuration).
 */
export interface INotice {
  type: 'notice';
  id: string;
  message: string;
}

/**
 * A model being downloaded before the first attempt: bytes so far and in all (0: not known yet),
 * bytes per second (0: not measured yet) and seconds left (-1: not known yet).
 */
export interface IDownload {
  type: 'download';
  id: string;
  /** The hub id or REPO:FILE.gguf being downloaded. */
  what: string;
  done: number;
  total: number;
  rate: number;
  eta: number;
}

export interface IAttemptStarted {
  type: 'attempt';
  id: string;
  number: number;
  of: number;
}

export interface ITextStreamed {
  type: 'text';
  id: string;
  number: number;
  text: string;
}

export interface IAttemptFailed {
  type: 'attempt_failed';
  id: string;
  number: number;
  code: string;
  ename: string;
  evalue: string;
  error: string;
}

export interface IFigure {
  type: 'figure';
  id: string;
  number: number;
  /** base64 PNG */
  png: string;
}

export interface IDone {
  type: 'done';
  id: string;
  ok: boolean;
  code: string;
  attempts: number;
  seconds: number;
  error: string;
  /**
   * What was checked of the final attempt's figure, e.g. "ran and drew 1 figure with 3 horizontal
   * bars; follows the request: horizontal bars" (viscoder_jupyter/core/verified.py);
   * empty when no attempt drew, absent from kernels older than the field.
   */
  verified?: string;
  /**
   * What the review of generated code flagged in `code` (viscoder_jupyter/core/code_review.py):
   * network, other programs, file writes, eval, credentials, IPython escapes, probes. The panel
   * shows each and keeps Accept off until the user says they read the code. Empty when nothing
   * is flagged; absent from kernels older than the field.
   */
  findings?: IReviewFinding[];
}

/** One line the review flagged: its number (1-based) in `code`, its text, and why. */
export interface IReviewFinding {
  line: number;
  text: string;
  why: string;
}

export interface ICancelled {
  type: 'cancelled';
  id: string;
}

export type ErrorReason = 'no_frames' | 'busy' | 'bad_request' | 'backend' | 'internal';

export interface IKernelError {
  type: 'error';
  id: string;
  reason: ErrorReason;
  message: string;
}

/** Kernel to frontend. */
export type KernelMessage =
  | IReady
  | IStatus
  | INotice
  | IDownload
  | IAttemptStarted
  | ITextStreamed
  | IAttemptFailed
  | IFigure
  | IDone
  | ICancelled
  | IKernelError;

/** Messages that end a run. */
export function isFinal(message: KernelMessage): boolean {
  return message.type === 'done' || message.type === 'cancelled' || message.type === 'error';
}
