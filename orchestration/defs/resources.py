import dagster as dg

from orchestration.lib.resources import LakeResource


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"lake": LakeResource()})
