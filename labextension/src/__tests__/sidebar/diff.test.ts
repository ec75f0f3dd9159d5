import { describe, expect, test } from 'vitest';

import { diffLines, IDiffLine } from '../../sidebar/diff';

/** The diff as the sidebar shows it: '+' added, '-' removed, ' ' unchanged. */
function shown(lines: IDiffLine[]): string[] {
  const mark = { same: ' ', added: '+', removed: '-' } as const;
  return lines.map(line => mark[line.kind] + line.text);
}

describe('diffLines', () => {
  test('unchanged code gives no change', () => {
    const code = 'import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()\n';
    const lines = diffLines(code, code);
    expect(lines.every(line => line.kind === 'same')).toBe(true);
    expect(lines.map(line => line.text)).toEqual(['import matplotlib.pyplot as plt', 'plt.plot([1, 2])', 'plt.show()']);
  });

  test('a changed line is removed and its replacement added, in place', () => {
    const before = "df = load()\nplt.bar(df['x'], df['y'])\nplt.show()";
    const after = "df = load()\nplt.barh(df['x'], df['y'])\nplt.show()";
    expect(shown(diffLines(before, after))).toEqual([
      ' df = load()',
      "-plt.bar(df['x'], df['y'])",
      "+plt.barh(df['x'], df['y'])",
      ' plt.show()'
    ]);
  });

  test('added and removed lines are marked, the rest kept', () => {
    const before = 'import pandas as pd\nprint(df)\nplt.plot(df)';
    const after = 'import pandas as pd\nimport matplotlib.pyplot as plt\nplt.plot(df)\nplt.show()';
    expect(shown(diffLines(before, after))).toEqual([
      ' import pandas as pd',
      '-print(df)',
      '+import matplotlib.pyplot as plt',
      ' plt.plot(df)',
      '+plt.show()'
    ]);
  });

  test('an empty cell: every line of the fix is added', () => {
    expect(shown(diffLines('', 'a\nb'))).toEqual(['+a', '+b']);
  });

  test('an empty fix: every line of the cell is removed', () => {
    expect(shown(diffLines('a\nb\n', ''))).toEqual(['-a', '-b']);
  });

  test('line endings and a final newline are not changes', () => {
    expect(diffLines('a\r\nb\r\n', 'a\nb').every(line => line.kind === 'same')).toBe(true);
    expect(diffLines('a\nb', 'a\nb\n')).toHaveLength(2);
  });

  test('blank lines inside the code count as lines', () => {
    expect(shown(diffLines('a\n\nb', 'a\nb'))).toEqual([' a', '-', ' b']);
  });

  test('repeated lines: the common lines are kept, only the extra one is added', () => {
    const lines = diffLines('x\ny\nx', 'x\ny\ny\nx');
    expect(lines.filter(line => line.kind === 'same')).toHaveLength(3);
    expect(lines.filter(line => line.kind === 'added')).toEqual([{ kind: 'added', text: 'y' }]);
    expect(lines.filter(line => line.kind === 'removed')).toEqual([]);
  });
});
