from registry.models import Base
from registry.settings import Settings
from servicekit.migrate import run_env

run_env(Base.metadata, Settings().database_url)
