import * as React from 'react';

import { IDownload } from '../protocol';

/** 1.2 GB, 45.0 MB, 310 kB, 12 B (decimal units, as the hub lists file sizes). */
export function formatBytes(n: number): string {
  for (const [unit, scale] of [
    ['GB', 1e9],
    ['MB', 1e6],
    ['kB', 1e3]
  ] as const) {
    if (n >= scale) {
      return `${(n / scale).toFixed(1)} ${unit}`;
    }
  }
  return `${Math.round(n)} B`;
}

function formatDuration(seconds: number): string {
  if (seconds < 90) {
    return `${Math.round(seconds)} s`;
  }
  if (seconds < 5400) {
    return `${Math.round(seconds / 60)} min`;
  }
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** 'Downloading X: 1.2 GB of 15.2 GB (8%), 45.0 MB/s, about 5 min left' (as the magic says it). */
export function downloadText(download: IDownload): string {
  const amount = download.total
    ? `${formatBytes(download.done)} of ${formatBytes(download.total)} (${Math.min(100, Math.floor((100 * download.done) / download.total))}%)`
    : formatBytes(download.done);
  const parts = [`Downloading ${download.what || 'the model'}: ${amount}`];
  if (download.rate > 0) {
    parts.push(`${formatBytes(download.rate)}/s`);
  }
  if (download.eta >= 0) {
    parts.push(`about ${formatDuration(download.eta)} left`);
  }
  return parts.join(', ');
}

/** A model download in the sidebar: a bar (indeterminate until the size is known) and its numbers. */
export function Download({ download }: { download: IDownload }): JSX.Element {
  return (
    <div className="jp-VisCoder-download" role="status">
      <progress
        className="jp-VisCoder-download-bar"
        max={download.total || undefined}
        value={download.total ? download.done : undefined}
      />
      <div className="jp-VisCoder-download-text">{downloadText(download)}</div>
    </div>
  );
}
