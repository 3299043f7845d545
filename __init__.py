"""Identity Layer for ComfyUI: registers the nodes (V3 schema), the web extension with its routes, and its folders."""

WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    from .nodes import IdentityExtension, register_folders
    from .nodes.routes import register_routes

    register_folders()
    register_routes()
    return IdentityExtension()
