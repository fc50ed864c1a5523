#pragma once
// stb_image and stb_image_resize (Debian: libstb-dev, <stb/...>) for
// image_folder.hpp, compiled as a private copy in every translation unit that
// includes this header: STB_IMAGE_STATIC / STB_IMAGE_RESIZE_STATIC make every
// stb function `static`, so ssl's copy has internal linkage and cannot clash at
// link time with a program's own stb implementation in another file.
//
// Within one translation unit the two copies would share one include guard,
// so:
//   * if <stb/stb_image.h> (or stb_image_resize.h) was included before this
//     header, that inclusion is used as it is: its implementation must then be
//     compiled somewhere in the program, as its documentation asks anyway;
//   * in the one file where a program compiles stb's implementation itself
//     (#define STB_IMAGE_IMPLEMENTATION), include <stb/stb_image.h> before
//     any ssl header: the other order defines stb's functions twice.
// Nothing changes for files that do not include stb themselves.
//
// ssl decodes from memory and reads the failure reason on the decoding
// thread; stb_image keeps that reason in a thread_local, so images can be
// decoded in parallel.
//
// ssl's copy decodes only PNG, JPEG and BMP (STBI_ONLY_PNG/JPEG/BMP), the
// formats image_folder.hpp reads: stb picks the decoder from the bytes, not
// the file name, so a ".png" holding a TGA, PSD, GIF, HDR, PIC or PNM would
// otherwise reach decoders that accept nearly any bytes as a header (a
// 300-byte file "decoded" as a huge TGA of zeros in 11 seconds).

#ifndef STBI_INCLUDE_STB_IMAGE_H
#pragma push_macro("STB_IMAGE_IMPLEMENTATION")
#pragma push_macro("STB_IMAGE_STATIC")
#undef STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_IMPLEMENTATION
#undef STB_IMAGE_STATIC
#define STB_IMAGE_STATIC
#pragma push_macro("STBI_ONLY_PNG")
#pragma push_macro("STBI_ONLY_JPEG")
#pragma push_macro("STBI_ONLY_BMP")
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#ifndef STBI_FAILURE_USERMSG
#define STBI_FAILURE_USERMSG  // "Corrupt PNG" rather than "bad zlib header"
#define SSL_STB_DEFINED_USERMSG
#endif
#include <stb/stb_image.h>
#ifdef SSL_STB_DEFINED_USERMSG
#undef STBI_FAILURE_USERMSG
#undef SSL_STB_DEFINED_USERMSG
#endif
#pragma pop_macro("STBI_ONLY_BMP")
#pragma pop_macro("STBI_ONLY_JPEG")
#pragma pop_macro("STBI_ONLY_PNG")
#pragma pop_macro("STB_IMAGE_STATIC")
#pragma pop_macro("STB_IMAGE_IMPLEMENTATION")
#endif

#ifndef STBIR_INCLUDE_STB_IMAGE_RESIZE_H
#pragma push_macro("STB_IMAGE_RESIZE_IMPLEMENTATION")
#pragma push_macro("STB_IMAGE_RESIZE_STATIC")
#undef STB_IMAGE_RESIZE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#undef STB_IMAGE_RESIZE_STATIC
#define STB_IMAGE_RESIZE_STATIC
#include <stb/stb_image_resize.h>
#pragma pop_macro("STB_IMAGE_RESIZE_STATIC")
#pragma pop_macro("STB_IMAGE_RESIZE_IMPLEMENTATION")
#endif
