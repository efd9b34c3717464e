# sluice_add_plugin(<name> <sources>...): a Sluice flow plugin as a shared object that exports
# only its entry symbol, links nothing but the SDK, and refuses undefined symbols at link time.
function(sluice_add_plugin name)
  add_library(${name} MODULE ${ARGN})
  target_link_libraries(${name} PRIVATE Sluice::sdk)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
  target_link_options(${name} PRIVATE "LINKER:-z,defs")
endfunction()
