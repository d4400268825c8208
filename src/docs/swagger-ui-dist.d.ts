/**
 * The swagger-ui-dist files src/docs/assets.ts imports `with { type: 'file' }`:
 * Bun answers the file's path (in the compiled binary, its embedded copy), not
 * the module. TypeScript cannot tell an import attribute from a plain import, so
 * these say what Bun gives.
 */
declare module 'swagger-ui-dist/swagger-ui-bundle.js' {
  const path: string
  export default path
}
declare module 'swagger-ui-dist/swagger-ui.css' {
  const path: string
  export default path
}
declare module 'swagger-ui-dist/favicon-16x16.png' {
  const path: string
  export default path
}
declare module 'swagger-ui-dist/favicon-32x32.png' {
  const path: string
  export default path
}
