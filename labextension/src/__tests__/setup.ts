// What jsdom lacks and the JupyterLab packages touch when they are imported (JupyterLab's own
// jest shim, @jupyterlab/testing, adds the same): @lumino/dragdrop subclasses DragEvent, and
// @jupyter/web-components' design tokens ask window.matchMedia.
if (typeof globalThis.DragEvent === 'undefined') {
  (globalThis as { DragEvent?: unknown }).DragEvent = class DragEvent extends MouseEvent {};
}
if (typeof window.matchMedia !== 'function') {
  window.matchMedia = (query: string): MediaQueryList =>
    ({
      matches: false,
      media: query,
      onchange: null,
      addListener: () => undefined,
      removeListener: () => undefined,
      addEventListener: () => undefined,
      removeEventListener: () => undefined,
      dispatchEvent: () => false
    }) as MediaQueryList;
}
// ReactWidget unmounts its React root in an idle callback (the view tests render the real view).
if (typeof globalThis.requestIdleCallback !== 'function') {
  globalThis.requestIdleCallback = ((callback: IdleRequestCallback) =>
    setTimeout(
      () => callback({ didTimeout: false, timeRemaining: () => 0 }),
      0
    )) as unknown as typeof requestIdleCallback;
}
