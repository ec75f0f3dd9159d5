// eslint for the extension's TypeScript (labextension/src) and the Galata tests (ui-tests/tests).
// Rules as in JupyterLab's extension template; formatting is prettier's (eslint-config-prettier
// turns off the rules that would fight it).
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    ignores: [
      '**/node_modules/',
      'labextension/lib/',
      'viscoder_jupyter/',
      'ui-tests/playwright-report/',
      'ui-tests/test-results/'
    ]
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.{ts,tsx}'],
    rules: {
      // Interfaces are IThing, as in JupyterLab.
      '@typescript-eslint/naming-convention': [
        'error',
        { selector: 'interface', format: ['PascalCase'], custom: { regex: '^I[A-Z]', match: true } }
      ],
      // Relaxed as in JupyterLab's template: `any` where the Galata tests reach into window.jupyterapp
      // and where Lumino wants a JSON object; `namespace` for CommandIDs, JupyterLab's idiom.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-namespace': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { args: 'none' }],
      curly: ['error', 'all'],
      eqeqeq: 'error',
      'prefer-arrow-callback': 'error'
    }
  },
  prettier
);
