import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { IFixSettings } from '../protocol';

export const SETTINGS_ID = 'viscoder-jupyter:sidebar';

/** The fix settings from the registry: empty or null values are left to the kernel's config. */
export function fixSettingsFrom(settings: ISettingRegistry.ISettings | null): IFixSettings {
  if (!settings) {
    return {};
  }
  const out: IFixSettings = {};
  const backend = settings.composite.backend;
  const model = settings.composite.model;
  const retries = settings.composite.retries;
  const timeout = settings.composite.timeout;
  if (typeof backend === 'string' && backend.trim()) {
    out.backend = backend.trim();
  }
  if (typeof model === 'string' && model.trim()) {
    out.model = model.trim();
  }
  if (typeof retries === 'number') {
    out.retries = retries;
  }
  if (typeof timeout === 'number') {
    out.timeout = timeout;
  }
  return out;
}
