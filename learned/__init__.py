"""World models: baselines, learned state/video models and the hybrid. Importing this
registers every built-in model lazily (``"module:attr"``), so torch loads on first use."""

from physground.world_model import MODELS

MODELS.register("copy-last", "physground.learned.baselines:BaselineCopyLast",
                tags=["baseline", "state", "pixels"])
MODELS.register("constant-velocity", "physground.learned.baselines:BaselineConstantVelocity",
                tags=["baseline", "state", "pixels"])
MODELS.register("reference", "physground.learned.reference:ModelReference",
                tags=["reference", "state", "pixels"])
MODELS.register("state-gnn", "physground.learned.modeling_state_gnn:ModelStateGNN",
                tags=["learned", "state", "rigid", "cloth", "fluid"])
MODELS.register("video-transformer",
                "physground.learned.modeling_video_transformer:ModelVideoTransformer",
                tags=["learned", "pixels"])
MODELS.register("hybrid-cloth", "physground.learned.modeling_hybrid:ModelHybridCloth",
                tags=["learned", "hybrid", "state", "cloth"])
