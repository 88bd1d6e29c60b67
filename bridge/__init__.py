"""productsup-bridge: webhooks in, debounced Productsup process calls out."""
