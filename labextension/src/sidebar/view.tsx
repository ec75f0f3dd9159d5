import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import * as React from 'react';

import { diffLines } from './diff';
import { Download } from './download';
import { viscoderIcon } from './icon';
import { SidebarModel } from './model';
import { PanelWidth } from './width';

const NOTE_HINT = 'What is wrong? e.g. "labels overlap", "use a log scale". Empty: just make it run.';

export interface ISidebarViewOptions {
  /** Show a figure of the proposal at its natural size (index: which figure). */
  openFigure?: (png: string, index: number) => void;
  /** The panel's width (the user's, kept in the state database); default: the opening width. */
  width?: PanelWidth;
}

/**
 * The sidebar's view: re-renders whenever the model changes.
 */
export class SidebarView extends ReactWidget {
  constructor(
    readonly model: SidebarModel,
    private readonly _options: ISidebarViewOptions = {}
  ) {
    super();
    this.id = 'viscoder-sidebar';
    this.addClass('jp-VisCoder');
    this.title.icon = viscoderIcon;
    this.title.caption = 'VisCoder: fix this plot';
  }

  /** Put the caret in the note box once it is rendered and enabled (a button opened the panel). */
  focusNote(): void {
    let frames = 30;
    const attempt = () => {
      const note = this.node.querySelector<HTMLTextAreaElement>('textarea.jp-VisCoder-note');
      if (note && !note.disabled && this.isVisible) {
        note.focus({ preventScroll: false });
      } else if (--frames > 0) {
        requestAnimationFrame(attempt);
      }
    };
    requestAnimationFrame(attempt);
  }

  protected render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => <Panel model={this.model} openFigure={this._options.openFigure} />}
      </UseSignal>
    );
  }

  /**
   * JupyterLab opens side panels at about 230 px, too narrow for a line of code: give the panel
   * the width the user dragged it to, else widen it to the opening width (sidebar/width.ts).
   */
  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    requestAnimationFrame(() => void this._width.apply(this));
  }

  private get _width(): PanelWidth {
    this._defaultWidth ??= this._options.width ?? new PanelWidth(null);
    return this._defaultWidth;
  }

  private _defaultWidth: PanelWidth | null = null;
}

interface IPanelProps {
  model: SidebarModel;
  openFigure?: (png: string, index: number) => void;
}

function Panel({ model, openFigure }: IPanelProps): JSX.Element {
  const cell = model.cell;
  return (
    <div className="jp-VisCoder-body">
      <h2 className="jp-VisCoder-title">VisCoder</h2>
      {cell ? (
        <Target model={model} />
      ) : (
        <p className="jp-VisCoder-empty">Select a code cell in a notebook to fix its plot.</p>
      )}
      {model.problem && <p className="jp-VisCoder-problem">{model.problem}</p>}
      {model.notice && <p className="jp-VisCoder-notice">{model.notice}</p>}
      <Log model={model} />
      {model.proposal && <Proposal model={model} openFigure={openFigure} />}
      {model.proposal && <Decision model={model} />}
    </div>
  );
}

function Target({ model }: { model: SidebarModel }): JSX.Element {
  const error = model.error;
  const count = model.cell?.executionCount;
  const running = model.phase === 'running';
  // While a proposal waits, its diff shows the cell's code: no second copy, no note box.
  const proposed = model.phase === 'proposed';
  return (
    <section className="jp-VisCoder-target">
      <div className="jp-VisCoder-where">
        Cell {count ? `[${count}]` : `#${model.cellIndex + 1}`} in {model.panel?.context.path.split('/').pop()}
      </div>
      {!proposed && <pre className="jp-VisCoder-code">{model.source || '(empty cell)'}</pre>}
      {error && (
        <pre className="jp-VisCoder-error" title={error.traceback}>
          {error.ename}: {error.evalue}
        </pre>
      )}
      {proposed ? (
        model.note.trim() && <p className="jp-VisCoder-noteText">Your note: {model.note.trim()}</p>
      ) : (
        <>
          <textarea
            className="jp-VisCoder-note"
            aria-label="What is wrong with the plot"
            placeholder={NOTE_HINT}
            value={model.note}
            disabled={model.phase !== 'idle'}
            rows={3}
            onChange={event => (model.note = event.target.value)}
            onKeyDown={event => {
              if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
                event.preventDefault();
                void model.fix();
              }
            }}
          />
          <div className="jp-VisCoder-actions">
            <button
              className="jp-Button jp-mod-styled jp-mod-accept jp-VisCoder-fix"
              disabled={model.phase !== 'idle'}
              title="Ask the model for a fix (Ctrl+Enter in the note)"
              onClick={() => void model.fix()}
            >
              Fix this plot
            </button>
            {running && (
              <button
                className="jp-Button jp-mod-styled jp-mod-warn jp-VisCoder-cancel"
                onClick={() => void model.cancel()}
              >
                Cancel
              </button>
            )}
          </div>
        </>
      )}
    </section>
  );
}

function Log({ model }: { model: SidebarModel }): JSX.Element | null {
  if (!model.log.length) {
    return null;
  }
  return (
    <section className="jp-VisCoder-events">
      <ol className="jp-VisCoder-log">
        {model.log.map((line, i) => (
          <li key={i} className={`jp-VisCoder-log-${line.kind}`} title={line.detail}>
            {line.text}
          </li>
        ))}
      </ol>
      {model.phase === 'running' && model.download && <Download download={model.download} />}
      {model.phase === 'running' && model.stream && (
        <pre className="jp-VisCoder-stream">{model.stream.slice(-3000)}</pre>
      )}
    </section>
  );
}

function Proposal({ model, openFigure }: IPanelProps): JSX.Element {
  const proposal = model.proposal!;
  const lines = diffLines(model.source, proposal.code);
  const sign = { same: ' ', added: '+', removed: '-' };
  const flagged = new Set(proposal.findings.map(finding => finding.line));
  let number = 0; // the line's number in the proposal (removed lines are not in it)
  return (
    <section className="jp-VisCoder-proposal">
      <h3>Proposed fix</h3>
      {/* Findings first, with their tick box: seen before the figure and before Accept. */}
      {proposal.findings.length > 0 && <Review model={model} />}
      {/* One line of code per line: no wrapping, the box scrolls sideways. */}
      <div className="jp-VisCoder-diff" role="region" aria-label="Changes to the cell" tabIndex={0}>
        <div className="jp-VisCoder-diff-lines">
          {lines.map((line, i) => {
            const isFlagged = line.kind !== 'removed' && flagged.has(++number);
            return (
              <div
                key={i}
                className={`jp-VisCoder-diff-line jp-VisCoder-diff-${line.kind}${isFlagged ? ' jp-VisCoder-diff-flagged' : ''}`}
              >
                <span className="jp-VisCoder-diff-sign">{sign[line.kind]}</span>
                {line.text}
              </div>
            );
          })}
        </div>
      </div>
      {proposal.figures.map((png, i) => (
        <button
          key={i}
          className="jp-VisCoder-figureButton"
          title="Open the figure at full size"
          onClick={() => openFigure?.(png, i)}
        >
          <img className="jp-VisCoder-figure" alt="The fixed plot" src={`data:image/png;base64,${png}`} />
        </button>
      ))}
    </section>
  );
}

/**
 * What the review of generated code flagged in the proposal, line by line, and the "I read it"
 * tick that Accept and Insert below wait for: the code would run in the user's own kernel.
 */
function Review({ model }: { model: SidebarModel }): JSX.Element {
  const findings = model.proposal!.findings;
  return (
    <section className="jp-VisCoder-review" role="alert">
      <h3>Read this code before you use it</h3>
      <p>The review flagged lines that plotting code never needs:</p>
      <ul className="jp-VisCoder-findings">
        {findings.map((finding, i) => (
          <li key={i}>
            Line {finding.line}: <code>{finding.text}</code> {finding.why}
          </li>
        ))}
      </ul>
      <label className="jp-VisCoder-reviewRead">
        <input
          type="checkbox"
          checked={model.reviewRead}
          onChange={event => (model.reviewRead = event.target.checked)}
        />{' '}
        I read it: put this code in my notebook anyway
      </label>
    </section>
  );
}

/** Accept, Insert below, Discard: pinned to the bottom of the panel while the proposal waits. */
function Decision({ model }: { model: SidebarModel }): JSX.Element {
  const waiting = model.mayUse ? undefined : "Tick 'I read it' first";
  // jp-mod-disabled: JupyterLab's class for a control that cannot be used now (style: base.css).
  const useClass = model.mayUse ? '' : ' jp-mod-disabled';
  return (
    <div className="jp-VisCoder-actions jp-VisCoder-decision">
      <button
        className={`jp-Button jp-mod-styled jp-mod-accept jp-VisCoder-accept${useClass}`}
        disabled={!model.mayUse}
        title={waiting}
        onClick={() => model.accept()}
      >
        Accept
      </button>
      <button
        className={`jp-Button jp-mod-styled jp-VisCoder-insert${useClass}`}
        disabled={!model.mayUse}
        title={waiting}
        onClick={() => model.insertBelow()}
      >
        Insert below
      </button>
      <button className="jp-Button jp-mod-styled jp-mod-reject jp-VisCoder-discard" onClick={() => model.discard()}>
        Discard
      </button>
    </div>
  );
}
