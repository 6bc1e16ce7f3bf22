/**
 * Typechecks the SDK as a browser would see it: DOM and ES libraries only, no @types/node. Any
 * use of a Node global (Buffer, process, NodeJS.Timeout, ...) fails here, which the bundle test
 * cannot catch (a bundler leaves unknown globals alone).
 */
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

describe('browser safety', () => {
  it('typechecks src/client with the DOM library and without Node types', () => {
    const entry = fileURLToPath(new URL('../../src/client/index.ts', import.meta.url));
    const program = ts.createProgram([entry], {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
      types: [],
      strict: true,
      noUncheckedIndexedAccess: true,
      exactOptionalPropertyTypes: true,
      noEmit: true,
      skipLibCheck: true,
    });
    const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(diagnostics).toEqual([]);
    const files = program.getSourceFiles().map((f) => f.fileName);
    expect(files.some((f) => f.includes('/src/client/'))).toBe(true);
    expect(files.filter((f) => f.includes('@types/node'))).toEqual([]);
    // Besides the SDK itself only src/lib, the shared pieces with no Node or server imports (were
    // one to use a Node API, the diagnostics above would say so).
    const outside = files.filter((f) => !f.includes('/src/client/') && !f.includes('/typescript/lib/'));
    expect(outside.filter((f) => !f.includes('/src/lib/'))).toEqual([]);
  });
});
