"""The TFLite backends' resize is the SavedModel's (TF1 resize_images: corners aligned, source =
destination x scale), not cv2.resize's half-pixel grid."""

import numpy as np

from handspot.litert import resize_like_saved_model


def test_downscale_samples_the_source_grid_at_whole_multiples():
    image = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3) * 5
    out = resize_like_saved_model(image, 2, 2)
    np.testing.assert_array_equal(out, image[::2, ::2])  # cv2.resize would blend neighbours


def test_upscale_interpolates_then_holds_the_last_pixel():
    row = np.array([[0, 100]], np.uint8)
    image = np.repeat(row[:, :, None], 3, axis=2)  # 1 x 2 pixels
    out = resize_like_saved_model(image, 4, 1)[0, :, 0]
    np.testing.assert_array_equal(out, [0, 50, 100, 100])  # source x = 0, 0.5, 1, 1.5 -> 1


def test_non_square_frames_map_each_axis_on_its_own():
    image = np.zeros((720, 1280, 3), np.uint8)
    image[:, 640:] = 255
    out = resize_like_saved_model(image, 320, 320)
    assert out.shape == (320, 320, 3)
    assert out[:, 159].max() == 0 and out[:, 160].min() == 255  # x 640 -> 160 exactly
