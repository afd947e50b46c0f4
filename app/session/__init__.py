"""One session without its page: settings (state.py), runs in fair turns (runner.py,
fairshare.py), the URL (url.py) and the user's own data (userdata.py). No Panel widgets here."""
