import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { IFixSettings } from '../protocol';

export const SETTINGS_ID = 'viscoder-jupyter:sidebar';

/** Settings chosen from a list (schema: oneOf consts); '' is "the kernel's setting". */
const CHOICES = ['backend', 'lib', 'sandbox'] as const;
/** Free text. */
const TEXTS = ['model'] as const;
/** Numbers; null is "the kernel's setting". */
const NUMBERS = ['retries', 'samples', 'timeout', 'attempt_budget'] as const;
/** Switches; null is "the kernel's setting". */
const SWITCHES = ['collect'] as const;

/** The fix settings from the registry: empty or null values are left to the kernel's config. */
export function fixSettingsFrom(settings: ISettingRegistry.ISettings | null): IFixSettings {
  if (!settings) {
    return {};
  }
  const composite = settings.composite;
  const out: IFixSettings = {};
  for (const key of [...CHOICES, ...TEXTS]) {
    const value = composite[key];
    if (typeof value === 'string' && value.trim()) {
      out[key] = value.trim();
    }
  }
  for (const key of NUMBERS) {
    const value = composite[key];
    if (typeof value === 'number' && Number.isFinite(value)) {
      out[key] = value;
    }
  }
  for (const key of SWITCHES) {
    const value = composite[key];
    if (typeof value === 'boolean') {
      out[key] = value;
    }
  }
  return out;
}
