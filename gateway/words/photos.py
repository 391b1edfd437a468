"""What the refusals of pictures and a facility's photos say on pages (towntip/kernel/images.py,
towntip/kernel/contracts/bookings_photos.py)."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    "image.not_a_picture": ("写真として読み込めませんでした。JPEG・PNG・WebPの写真を選んでください。",
                            "This could not be read as a picture. Choose a JPEG, PNG or WebP photo."),
    "image.too_big": ("写真のファイルが大きすぎます（10MBまで）。", "The photo file is too large (10 MB at most)."),
    "image.too_many_pixels": ("写真の画素数が多すぎます（4,000万画素まで）。",
                              "The picture has too many pixels (40 megapixels at most)."),
    "photo.staff_only": ("施設の写真は職員だけが追加・削除できます。",
                         "Only staff add and remove a facility's photos."),
    "photo.not_found": ("その写真は見つかりません（削除された可能性があります）。",
                        "No such photo (it may have been removed)."),
    "photo.too_many": ("写真は1施設8枚までです。先に1枚削除してください。",
                       "A facility has at most 8 photos: remove one first."),
    "photo.bad": ("写真を保存できませんでした。別の写真でお試しください。",
                  "The photo could not be saved. Please try another one."),
}
