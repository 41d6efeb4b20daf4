"""Language server: forwards editor completion requests to the HTTP service (or an embedded model)."""
