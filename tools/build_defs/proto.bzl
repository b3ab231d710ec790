"""cc_grpc_proto: the one macro that compiles .proto files to C++ and gRPC code.

It wraps Debian's `protoc` and `grpc_cpp_plugin` in a genrule, so the build
needs no downloaded rules. Import paths are relative to the workspace root
(e.g. `import "proto/vpn/v1/sa.proto";`).
"""

def cc_grpc_proto(name, srcs, deps = [], grpc = True, visibility = None):
    """Generates and compiles C++ (and gRPC service) code for `srcs`.

    Args:
      name: the cc_library to create.
      srcs: .proto files in this package.
      deps: other cc_grpc_proto targets whose .proto files these import.
      grpc: whether to also generate gRPC service stubs.
      visibility: of the cc_library.
    """
    pkg = native.package_name()
    outs = []
    hdrs = []
    for src in srcs:
        base = src[:-len(".proto")]
        outs += [base + ".pb.cc", base + ".pb.h"]
        hdrs.append(base + ".pb.h")
        if grpc:
            outs += [base + ".grpc.pb.cc", base + ".grpc.pb.h"]
            hdrs.append(base + ".grpc.pb.h")

    grpc_flags = ""
    tools = []
    if grpc:
        grpc_flags = ("--plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin " +
                      "--grpc_out=$(GENDIR) ")

    native.genrule(
        name = name + "_gen",
        srcs = srcs + [d + "_srcs" for d in deps],
        outs = outs,
        cmd = ("/usr/bin/protoc -I. -I/usr/include --cpp_out=$(GENDIR) " +
               grpc_flags +
               " ".join(["%s/%s" % (pkg, s) if pkg else s for s in srcs])),
        tools = tools,
    )

    native.filegroup(
        name = name + "_srcs",
        srcs = srcs + [d + "_srcs" for d in deps],
        visibility = visibility,
    )

    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = hdrs,
        deps = deps + ["@system//:grpc", "@system//:protobuf"],
        visibility = visibility,
    )
