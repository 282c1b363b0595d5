// Lint rules for the whole repository (npm run lint; also part of npm test). Type-aware rules from
// typescript-eslint catch promises nobody awaits and unsafe `any` flows; Prettier owns the layout, so
// eslint-config-prettier turns off every rule that would fight it.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'cdk.out/**', 'coverage/**', 'data/**', 'service/web/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Errors and promises: nothing floats, nothing is thrown that is not an Error.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
      eqeqeq: ['error', 'always'],
      // Fastify plugins, hooks and port methods are async by contract even when a body needs no await.
      '@typescript-eslint/require-await': 'off',
      // Non-null assertions on indexed reads document intent (noUncheckedIndexedAccess is off), and the rule's
      // --fix removed assertions the compiler needed.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
    },
  },
  {
    // Operator commands, developer tools, tests and the deployment print to the terminal on purpose.
    files: ['scripts/**', 'test/**', 'infra/**', 'models/**'],
    rules: { 'no-console': 'off' },
  },
  {
    // Tests read JSON answers (`any` by nature) and assert on them: the assertion is the type check.
    files: ['test/**'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // The ERPNext Client Script runs in the desk's page: tsc checks its names against the DOM and the Frappe
    // globals it declares (service/erpnext-client/tsconfig.json), which no-undef cannot know.
    files: ['service/erpnext-client/**/*.js'],
    rules: { 'no-undef': 'off' },
  },
  prettier,
  {
    // Prettier wraps code at 120 but leaves comments and strings alone; this holds them to it too (after
    // eslint-config-prettier, which turns max-len off).
    rules: { 'max-len': ['error', { code: 120, ignoreUrls: true, ignoreRegExpLiterals: true }] },
  },
);
