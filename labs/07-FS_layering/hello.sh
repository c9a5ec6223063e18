#!/bin/sh
echo "Hello from $(hostname): this container runs my-image:1.0"
