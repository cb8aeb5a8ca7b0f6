// Node-only helpers (crypto, Redis). Not for the browser.
export {};
