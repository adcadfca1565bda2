-- one database per service (DESIGN.md: services share nothing but topics)
CREATE DATABASE registry;
CREATE DATABASE inspection;
CREATE DATABASE customs;
CREATE DATABASE scoring;
