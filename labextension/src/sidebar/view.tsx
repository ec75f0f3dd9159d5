import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import * as React from 'react';

import { diffLines } from './diff';
import { SidebarModel } from './model';
import { viscoderIcon } from './icon';

const NOTE_HINT = 'What is wrong? e.g. "labels overlap", "use a log scale". Empty: just make it run.';

/**
 * The sidebar's view: re-renders whenever the model changes.
 */
export class SidebarView extends ReactWidget {
  constructor(readonly model: SidebarModel) {
    super();
    this.id = 'viscoder-sidebar';
    this.addClass('jp-VisCoder');
    this.title.icon = viscoderIcon;
    this.title.caption = 'VisCoder: fix this plot';
  }

  protected render(): JSX.Element {
    return <UseSignal signal={this.model.changed}>{() => <Panel model={this.model} />}</UseSignal>;
  }
}

function Panel({ model }: { model: SidebarModel }): JSX.Element {
  const cell = model.cell;
  return (
    <div className="jp-VisCoder-body">
      <h2 className="jp-VisCoder-title">VisCoder</h2>
      {cell ? <Target model={model} /> : <p className="jp-VisCoder-empty">Select a code cell in a notebook to fix its plot.</p>}
      {model.problem && <p className="jp-VisCoder-problem">{model.problem}</p>}
      {model.notice && <p className="jp-VisCoder-notice">{model.notice}</p>}
      <Log model={model} />
      {model.proposal && <Proposal model={model} />}
    </div>
  );
}

function Target({ model }: { model: SidebarModel }): JSX.Element {
  const error = model.error;
  const count = model.cell?.executionCount;
  const running = model.phase === 'running';
  return (
    <section className="jp-VisCoder-target">
      <div className="jp-VisCoder-where">
        Cell {count ? `[${count}]` : `#${model.cellIndex + 1}`} in {model.panel?.context.path.split('/').pop()}
      </div>
      <pre className="jp-VisCoder-code">{model.source || '(empty cell)'}</pre>
      {error && (
        <pre className="jp-VisCoder-error" title={error.traceback}>
          {error.ename}: {error.evalue}
        </pre>
      )}
      <textarea
        className="jp-VisCoder-note"
        placeholder={NOTE_HINT}
        value={model.note}
        disabled={model.phase !== 'idle'}
        rows={3}
        onChange={event => (model.note = event.target.value)}
      />
      <div className="jp-VisCoder-actions">
        <button
          className="jp-Button jp-mod-styled jp-mod-accept jp-VisCoder-fix"
          disabled={model.phase !== 'idle'}
          onClick={() => void model.fix()}
        >
          Fix this plot
        </button>
        {running && (
          <button className="jp-Button jp-mod-styled jp-mod-warn jp-VisCoder-cancel" onClick={() => void model.cancel()}>
            Cancel
          </button>
        )}
      </div>
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
      {model.phase === 'running' && model.stream && <pre className="jp-VisCoder-stream">{model.stream.slice(-3000)}</pre>}
    </section>
  );
}

function Proposal({ model }: { model: SidebarModel }): JSX.Element {
  const proposal = model.proposal!;
  const lines = diffLines(model.source, proposal.code);
  const sign = { same: ' ', added: '+', removed: '-' };
  return (
    <section className="jp-VisCoder-proposal">
      <h3>Proposed fix</h3>
      <pre className="jp-VisCoder-diff">
        {lines.map((line, i) => (
          <div key={i} className={`jp-VisCoder-diff-${line.kind}`}>
            {sign[line.kind]} {line.text}
          </div>
        ))}
      </pre>
      {proposal.figures.map((png, i) => (
        <img key={i} className="jp-VisCoder-figure" alt="The fixed plot" src={`data:image/png;base64,${png}`} />
      ))}
      <div className="jp-VisCoder-actions">
        <button className="jp-Button jp-mod-styled jp-mod-accept jp-VisCoder-accept" onClick={() => model.accept()}>
          Accept
        </button>
        <button className="jp-Button jp-mod-styled jp-VisCoder-insert" onClick={() => model.insertBelow()}>
          Insert below
        </button>
        <button className="jp-Button jp-mod-styled jp-mod-reject jp-VisCoder-discard" onClick={() => model.discard()}>
          Discard
        </button>
      </div>
    </section>
  );
}
