// Lint rules the compiler does not enforce: no floating promises, type-only imports, node: imports.
import tseslint from 'typescript-eslint';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'web/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { project: path.join(root, 'tsconfig.check.json'), tsconfigRootDir: root },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
      '@typescript-eslint/no-explicit-any': ['error', { ignoreRestArgs: true }],
      'no-restricted-imports': ['error', {
        patterns: [{ regex: '^(fs|path|http|https|crypto|os|url|events|zlib|child_process|net|worker_threads|module|cluster|stream|dns|timers|util)(/.*)?$', message: 'Import Node built-ins with the node: prefix.' }],
      }],
    },
  },
  {
    // Routes, services and auth reach storage only through repositories.
    files: ['**/src/*/routes.ts', '**/src/auth/**', '**/src/*/service.ts', '**/src/integrations/**', '**/src/leaks/**', '**/src/http/**'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'kysely', message: 'Build queries in src/store/repos; call a repository here.' }],
      }],
    },
  },
  {
    // Tests may use `any` for parsed JSON answers.
    files: ['**/test/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
