from alecton.cli.main import app

app(prog_name="alecton")
