"""ComfyUI nodes: thin glue between ComfyUI types and `identity/`."""
