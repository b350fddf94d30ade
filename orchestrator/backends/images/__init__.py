"""Worker images, shared by the container backends (docker, aws): base image, API images."""
