"""Task Studio's Qt front end."""
