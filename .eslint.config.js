import neostandard from 'neostandard'
import globals from 'globals'
import importX from 'eslint-plugin-import-x'
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'coverage/**', '.tap/**', 'node_modules/**'] }),
  {
    // TypeBox's idiom: a schema and its Static<> type share one name (a value and a type, which TypeScript allows).
    files: ['schemas/**/*.ts'],
    rules: { '@typescript-eslint/no-redeclare': 'off' }
  },
  {
    // Data flows one way (route → plugin → engine → upstream): no module may import one that imports it back.
    files: ['src/**/*.ts', 'plugins/**/*.ts', 'routes/**/*.ts', 'schemas/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      ...importX.flatConfigs.typescript.settings,
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: 'tsconfig.json' })]
    },
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] }
  },
  {
    // The dashboard's script runs in the browser (no build step): browser globals, and uPlot from its own script tag.
    files: ['dashboard/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { ...globals.browser, uPlot: 'readonly' } }
  },
  {
    // The engine never reaches back into Fastify's layers.
    files: ['src/**/*.ts'],
    ignores: ['src/app.ts', 'src/index.ts', 'src/server.ts', 'src/cli.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/plugins/*', '**/routes/*'], message: 'the engine (src/) never imports plugins or routes' }] }]
    }
  }
]
