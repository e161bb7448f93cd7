// ESLint for the TypeScript frontend (labextension/src and its jest tests). Formatting is
// prettier's (eslint-config-prettier turns the style rules off); `jlpm lint:check` runs both.
module.exports = {
  root: true,
  env: { browser: true, es2020: true, node: true },
  parser: '@typescript-eslint/parser',
  parserOptions: { project: ['tsconfig.test.json'], sourceType: 'module' },
  plugins: ['@typescript-eslint'],
  extends: ['eslint:recommended', 'plugin:@typescript-eslint/recommended', 'prettier'],
  ignorePatterns: ['node_modules', 'lib', 'jupyterlab_accel', '*.js', '*.d.ts'],
  rules: {
    '@typescript-eslint/naming-convention': [
      'error',
      { selector: 'interface', format: ['PascalCase'], custom: { regex: '^I[A-Z]', match: true } }
    ],
    '@typescript-eslint/no-unused-vars': ['error', { args: 'none' }],
    // Wire types are loose JSON in places; `any` stays visible in review rather than banned.
    '@typescript-eslint/no-explicit-any': 'off',
    '@typescript-eslint/no-namespace': 'off',
    '@typescript-eslint/no-floating-promises': 'error',
    curly: ['error', 'all'],
    eqeqeq: ['error', 'smart'],
    'prefer-arrow-callback': 'error'
  }
};
