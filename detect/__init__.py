"""Detection on video files, cameras and image folders."""
