"""A local team tracking server in one directory: PostgreSQL and ``mlflow server`` with logins
(``python -m foodcast server start / stop / status``); see ``server``."""
