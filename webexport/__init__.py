"""TF.js conversion and the browser demo."""
