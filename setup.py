"""Build colkern: setuptools drives CMake for the C++ extension colkern._C.

`kernels/` (Triton GPU kernels) is installed as the subpackage colkern.triton_kernels.
"""
import os
import subprocess
import sys
from pathlib import Path

import pybind11
from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: CMakeExtension) -> None:
        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(self.build_temp).resolve() / ext.name
        build_dir.mkdir(parents=True, exist_ok=True)
        cfg = os.environ.get("COLKERN_BUILD_TYPE", "Release")
        subprocess.run(
            [
                "cmake", str(ROOT),
                f"-DCMAKE_BUILD_TYPE={cfg}",
                f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}",
                f"-DPython_EXECUTABLE={sys.executable}",
                f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            ],
            cwd=build_dir, check=True,
        )
        jobs = str(os.cpu_count() or 2)
        subprocess.run(["cmake", "--build", ".", "--target", "_C", "-j", jobs],
                       cwd=build_dir, check=True)


setup(
    package_dir={"colkern": "python/colkern", "colkern.triton_kernels": "kernels"},
    packages=[*find_packages(where="python"), "colkern.triton_kernels"],
    # The shipped OCR quality models and the demo's sample PDF.
    package_data={"colkern": ["py.typed"], "colkern.quality": ["models/*.colq", "data/*.pdf"],
                  "colkern.hybrid": ["data/*.pdf"]},
    ext_modules=[CMakeExtension("colkern._C")],
    cmdclass={"build_ext": CMakeBuild},
)
