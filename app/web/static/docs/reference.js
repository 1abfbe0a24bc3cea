// Starts Swagger UI on /docs. A file of its own, not an inline script: the page's CSP allows only 'self'.
"use strict";
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: document.body.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null, // never send the document to swagger.io
    tryItOutEnabled: false,
  });
});
