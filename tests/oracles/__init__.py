"""Independent implementations the product is tested against."""
