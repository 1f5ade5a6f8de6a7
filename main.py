# Device entry point: the application lives in firmware/; this only starts it.
from firmware import app

app.run()
