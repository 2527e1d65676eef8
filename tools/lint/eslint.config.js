// Lint rules the compiler does not enforce: no floating promises, type-only imports, node: imports;
// for the console (web/src), React's rules and the rules of hooks as well.
import tseslint from 'typescript-eslint';
import react from 'eslint-plugin-react';
import reactHooks from 'eslint-plugin-react-hooks';
import layers from './layers.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'web/*.ts', 'web/*.mjs'] },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', '*.ts'],
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
    // The console: typed against web/tsconfig.json (DOM, JSX), React's recommended rules for the new
    // JSX runtime, and the rules of hooks with the React Compiler's checks.
    files: ['web/src/**/*.ts', 'web/src/**/*.tsx'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { project: path.join(root, 'web/tsconfig.json'), tsconfigRootDir: root, ecmaFeatures: { jsx: true } },
    },
    plugins: { '@typescript-eslint': tseslint.plugin, react, 'react-hooks': reactHooks },
    settings: { react: { version: 'detect' } },
    rules: {
      ...react.configs.flat.recommended.rules,
      ...react.configs.flat['jsx-runtime'].rules,
      ...reactHooks.configs.flat['recommended-latest'].rules,
      // TypeScript checks props; propTypes would say it twice.
      'react/prop-types': 'off',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
      '@typescript-eslint/no-explicit-any': ['error', { ignoreRestArgs: true }],
    },
  },
  {
    // Foundations never import features; a feature imports another only through what it offers.
    files: ['src/**/*.ts'],
    plugins: { keyward: layers },
    rules: { 'keyward/layers': 'error' },
  },
  {
    // SQL of one dialect lives under src/store/dialects/ (migrations, one set for both, branch inside).
    files: ['src/**/*.ts'],
    ignores: ['src/store/dialects/**', 'src/store/migrations/**'],
    rules: {
      'no-restricted-syntax': ['error', {
        selector: 'ImportSpecifier[imported.name=/^(PostgresAdapter|SqliteAdapter|MysqlAdapter)$/]',
        message: 'Dialect-specific code goes in src/store/dialects/ (see dialects/sql.ts).',
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
