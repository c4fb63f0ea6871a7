# Warnings every mpinet target builds with; the tree is kept clean under them.
function(mpinet_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wstrict-prototypes
                         -Wno-unused-parameter
                         -Wno-format-truncation) # messages are cut on purpose
endfunction()
