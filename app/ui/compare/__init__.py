"""Compare mode in the page: its views, its sidebar section and what it sends the browser."""
