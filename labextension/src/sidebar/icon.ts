import { LabIcon } from '@jupyterlab/ui-components';

const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <rect x="3" y="13" width="4" height="8" rx="1"/>
    <rect x="10" y="8" width="4" height="13" rx="1"/>
    <rect x="17" y="11" width="4" height="10" rx="1"/>
    <path d="M4 9.5 9.5 4l3 3L20 1.5l1.2 1.2-8.7 7.3-3-3-4.3 4.3z"/>
  </g>
</svg>`;

export const viscoderIcon = new LabIcon({ name: 'viscoder-jupyter:icon', svgstr: svg });
