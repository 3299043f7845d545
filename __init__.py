"""Identity Layer for ComfyUI: registers the nodes (V3 schema), the web extension and the model folders."""

WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    from .nodes import IdentityExtension, register_model_folders

    register_model_folders()
    return IdentityExtension()
