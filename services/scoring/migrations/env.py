from scoring.models import Base
from scoring.settings import Settings
from servicekit.migrate import run_env

run_env(Base.metadata, Settings().database_url)
