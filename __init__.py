"""Identity Layer for ComfyUI: registers the nodes (V3 schema), the web extension with its routes, and its folders,
and logs one line saying what it found."""

import logging

WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    from .nodes import IdentityExtension, register_folders, startup_line
    from .nodes.routes import register_routes

    register_folders()
    register_routes()
    logging.getLogger(__name__).info(startup_line())
    return IdentityExtension()
