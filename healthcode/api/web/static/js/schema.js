// /schema: the vendored Swagger UI over the service's own OpenAPI document
// (<html data-openapi>). A file rather than the usual inline script, so that
// the page keeps a self-only Content-Security-Policy like the other pages.
const root = document.documentElement;
const bundle = window.SwaggerUIBundle;
window.ui = bundle({
  url: root.dataset.openapi || "/schema/openapi.json",
  dom_id: "#swagger-container",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null, // the online validator badge would call another origin
  presets: [bundle.presets.apis, bundle.SwaggerUIStandalonePreset],
});
