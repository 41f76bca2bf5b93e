;; `_immortal`: a CPython extension module for the guest, written as a WebAssembly
;; dynamic library (what componentize-py links in for a `.cpython-314-wasm32-wasi.so`).
;; `edgepop build tokenizer` assembles it with `wasmtime.wat2wasm`, so no C toolchain
;; is needed. One function:
;;
;;     immortalize(obj) -> bool
;;         Make `obj` immortal (PEP 683). True if it was mortal, False if it already was.
;;
;; Why: an instance's memory is a copy-on-write mapping of the heap baked at build time,
;; and CPython writes to every object it touches (its reference count). Py_INCREF and
;; Py_DECREF leave immortal objects alone, so reading a baked table no longer copies
;; the pages it sits on.
;;
;; What it assumes, all from CPython 3.14's headers for a 32-bit default build:
;; a PyObject starts with its reference count (Py_ssize_t, 4 bytes); an object is
;; immortal when that count is at least _Py_IMMORTAL_MINIMUM_REFCNT = 1 << 30, and
;; _Py_SetImmortal stores _Py_IMMORTAL_INITIAL_REFCNT = 5 << 28.
(module $_immortal
  (@dylink.0
    (mem-info (memory 140 4) (table 1 0)))

  (import "env" "memory" (memory 1))
  (import "env" "__indirect_function_table" (table 1 funcref))
  (import "env" "__memory_base" (global $memory_base i32))
  (import "env" "__table_base" (global $table_base i32))
  (import "env" "PyModule_Create2" (func $PyModule_Create2 (param i32 i32) (result i32)))
  (import "GOT.mem" "_Py_TrueStruct" (global $True (mut i32)))
  (import "GOT.mem" "_Py_FalseStruct" (global $False (mut i32)))

  (export "__wasm_apply_data_relocs" (func $apply_data_relocs))
  (export "PyInit__immortal" (func $PyInit__immortal))

  ;; Our one function in the shared table, at __table_base: PyMethodDef.ml_meth points there.
  (elem (global.get $table_base) func $immortalize)

  ;; Static data at __memory_base (offsets in the comments). Pointers are written as
  ;; offsets here and made absolute by $apply_data_relocs when the library is loaded.
  (data (global.get $memory_base)
    ;;  0: module name; 10: function name; 22: its docstring
    "_immortal\00"
    "immortalize\00"
    "Make obj immortal (PEP 683).\00\00\00\00\00\00"
    ;; 56: PyMethodDef methods[2] = {{name, meth, METH_O, doc}, {NULL}}
    "\0a\00\00\00" "\00\00\00\00" "\08\00\00\00" "\16\00\00\00"
    "\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00"
    ;; 88: PyModuleDef = {PyModuleDef_HEAD_INIT (statically immortal), m_name, m_doc,
    ;;     m_size = -1, m_methods, m_slots, m_traverse, m_clear, m_free}
    "\00\00\00\70" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00"
    "\00\00\00\00" "\00\00\00\00" "\ff\ff\ff\ff" "\38\00\00\00"
    "\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")

  (func $relocate_memory (param $at i32)
    (i32.store
      (i32.add (global.get $memory_base) (local.get $at))
      (i32.add (global.get $memory_base) (i32.load (i32.add (global.get $memory_base) (local.get $at))))))

  (func $apply_data_relocs
    (call $relocate_memory (i32.const 56))   ;; methods[0].ml_name
    (i32.store                               ;; methods[0].ml_meth: a table index
      (i32.add (global.get $memory_base) (i32.const 60))
      (i32.add (global.get $table_base) (i32.const 0)))
    (call $relocate_memory (i32.const 68))   ;; methods[0].ml_doc
    (i32.store                               ;; module.m_name
      (i32.add (global.get $memory_base) (i32.const 108))
      (global.get $memory_base))
    (call $relocate_memory (i32.const 120))) ;; module.m_methods

  (func $PyInit__immortal (result i32)
    (call $PyModule_Create2
      (i32.add (global.get $memory_base) (i32.const 88))
      (i32.const 1013)))                     ;; PYTHON_API_VERSION

  (func $immortalize (param $module i32) (param $obj i32) (result i32)
    (if (result i32) (i32.ge_s (i32.load (local.get $obj)) (i32.const 0x40000000))
      (then (global.get $False))
      (else
        (i32.store (local.get $obj) (i32.const 0x50000000))
        (global.get $True)))))
